"""A gRPC client that knows nothing of ami: it discovers the MDMS API by server reflection
(the grpcio-reflection package from PyPI), builds the request type from the descriptors it
was served, calls MeterData/GetReadings and prints what it found as JSON lines."""

import json
import sys

import grpc
from google.protobuf import json_format, message_factory
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

addr, token, meter, register, start, end = sys.argv[1:7]
channel = grpc.insecure_channel(addr)
db = ProtoReflectionDescriptorDatabase(channel)
print(json.dumps({"services": sorted(db.get_services())}))
pool = DescriptorPool(db)
method = pool.FindServiceByName("ami.mdms.v1.MeterData").methods_by_name["GetReadings"]
request_type = message_factory.GetMessageClass(method.input_type)
response_type = message_factory.GetMessageClass(method.output_type)
request = json_format.ParseDict(
    {"meter": meter, "register": register, "from": start, "to": end, "view": "VIEW_RAW"},
    request_type(),
)
call = channel.unary_unary(
    "/ami.mdms.v1.MeterData/GetReadings",
    request_serializer=request_type.SerializeToString,
    response_deserializer=response_type.FromString,
)
response = call(request, metadata=[("authorization", "Bearer " + token)])
print(json.dumps(json_format.MessageToDict(response)))
try:
    call(request)
except grpc.RpcError as e:
    print(json.dumps({"without_token": e.code().name}))
