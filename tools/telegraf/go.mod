// Pins the telegraf binary of the compose stack's local telegraf image (scripts/install_telegraf.sh
// builds it with only the plugins deploy/telegraf/telegraf.conf uses). go.sum is telegraf's own
// go.sum of that release (its dependencies at the versions it was tested with): the module
// proxy here serves no checksum-database answers for some of them.
module kapacitor-ml-udfs/tools/telegraf

go 1.23.0

require github.com/influxdata/telegraf v1.32.3
