"""A gRPC client that knows nothing of ami. It discovers the server's services by reflection
(the grpcio-reflection package from PyPI), builds each request from the descriptors it was
served, and prints JSON lines: the services, then per call its response or its status code.

    grpc_reflect_call.py ADDR TOKEN [pkg.Service/Method JSON_REQUEST]...

TOKEN is sent as `authorization: Bearer TOKEN` on every call, reflection included ("-" sends
none). After the calls, the first call is made once more without a token, and its status code
printed as {"without_token": CODE}.
"""

import json
import sys

import grpc
from google.protobuf import json_format, message_factory
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)


class Bearer(grpc.UnaryUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    """Adds the bearer token to every call."""

    def __init__(self, token):
        self.metadata = [] if token == "-" else [("authorization", "Bearer " + token)]

    def _details(self, details):
        return details._replace(metadata=list(details.metadata or []) + self.metadata)

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_stream_stream(self, continuation, details, requests):
        return continuation(self._details(details), requests)


addr, token = sys.argv[1:3]
calls = list(zip(sys.argv[3::2], sys.argv[4::2]))
bare = grpc.insecure_channel(addr)
channel = grpc.intercept_channel(bare, Bearer(token))
db = ProtoReflectionDescriptorDatabase(channel)
print(json.dumps({"services": sorted(db.get_services())}))
pool = DescriptorPool(db)


def prepare(full_method, body, on):
    service, name = full_method.rsplit("/", 1)
    method = pool.FindServiceByName(service).methods_by_name[name]
    request_type = message_factory.GetMessageClass(method.input_type)
    response_type = message_factory.GetMessageClass(method.output_type)
    request = json_format.ParseDict(json.loads(body), request_type())
    call = on.unary_unary(
        "/" + full_method,
        request_serializer=request_type.SerializeToString,
        response_deserializer=response_type.FromString,
    )
    return call, request


for full_method, body in calls:
    call, request = prepare(full_method, body, channel)
    try:
        print(json.dumps(json_format.MessageToDict(call(request, timeout=20))))
    except grpc.RpcError as e:
        print(json.dumps({"error": e.code().name, "details": e.details()}))

if calls:
    call, request = prepare(calls[0][0], calls[0][1], bare)
    try:
        call(request, timeout=20)
        print(json.dumps({"without_token": "OK"}))
    except grpc.RpcError as e:
        print(json.dumps({"without_token": e.code().name}))
