"""Baseline for bench/agent_throughput.py: a mirror UDF written the conventional way.

One byte at a time for the length, one Response object per point, a flush per
message: what a straightforward agent does. Not used by the product.
"""

import sys

from udfkit import framing, udf_pb2


def read_message(stream) -> bytes | None:
    length, shift = 0, 0
    while True:
        byte = stream.read(1)
        if not byte:
            return None
        length |= (byte[0] & 0x7F) << shift
        if byte[0] < 0x80:
            break
        shift += 7
    return stream.read(length)


def main() -> None:
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while (data := read_message(stdin)) is not None:
        request = udf_pb2.Request.FromString(data)
        kind = request.WhichOneof("message")
        if kind == "point":
            response = udf_pb2.Response(point=request.point)
        elif kind == "init":
            response = udf_pb2.Response(init=udf_pb2.InitResponse(success=True))
        elif kind == "info":
            response = udf_pb2.Response(info=udf_pb2.InfoResponse())
        elif kind == "keepalive":
            response = udf_pb2.Response(keepalive=udf_pb2.KeepaliveResponse(
                time=request.keepalive.time))
        else:
            continue
        stdout.write(framing.frame(response.SerializeToString()))
        stdout.flush()


if __name__ == "__main__":
    main()
