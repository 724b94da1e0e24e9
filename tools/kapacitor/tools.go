//go:build tools

// Package tools records the kapacitor commands this module builds, so that
// `go mod tidy` keeps their dependencies in go.sum.
package tools

import (
	_ "github.com/influxdata/kapacitor/cmd/kapacitor"
	_ "github.com/influxdata/kapacitor/cmd/kapacitord"
)
