"""The committed udf_pb2.py must describe exactly what udf.proto says."""

import subprocess
import sys

from google.protobuf import descriptor_pb2

from tests.conftest import ROOT
from udfkit import udf_pb2

PROTO_DIR = ROOT / "udfs" / "udfkit"


def test_generated_module_matches_proto(tmp_path):
    out = tmp_path / "udf.desc"
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTO_DIR}",
         f"--descriptor_set_out={out}", "udf.proto"],
        check=True, capture_output=True,
    )
    fresh_set = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    fresh = _without_json_names(fresh_set.file[0])
    committed = _without_json_names(
        descriptor_pb2.FileDescriptorProto.FromString(udf_pb2.DESCRIPTOR.serialized_pb))
    assert committed == fresh, "udf_pb2.py is out of date with udf.proto: run `make proto`"


def _without_json_names(file: descriptor_pb2.FileDescriptorProto):
    """--descriptor_set_out fills json_name; the descriptor embedded in *_pb2.py leaves it out."""
    def clear(messages):
        for message in messages:
            for field in message.field:
                field.ClearField("json_name")
            clear(message.nested_type)
    clear(file.message_type)
    return file


def test_field_numbers_are_kapacitors():
    request = udf_pb2.Request.DESCRIPTOR.fields_by_name
    assert {name: request[name].number for name in request} == {
        "info": 1, "init": 2, "keepalive": 3, "snapshot": 4, "restore": 5,
        "begin": 16, "point": 17, "end": 18,
    }
    assert udf_pb2.Response.DESCRIPTOR.fields_by_name["error"].number == 6
    point = udf_pb2.Point.DESCRIPTOR.fields_by_name
    assert point["fieldsBool"].number == 12 and point["byName"].number == 11
