"""gRPC stubs for TF Serving's PredictionService and ModelService, using the official method paths."""

import grpc

from gateway.proto import tf_serving_subset_pb2 as pb

# The wire names TF Serving registers (tensorflow_serving/apis/*_service.proto); a test pins them.
PREDICT_METHOD = "/tensorflow.serving.PredictionService/Predict"
GET_MODEL_METADATA_METHOD = "/tensorflow.serving.PredictionService/GetModelMetadata"
GET_MODEL_STATUS_METHOD = "/tensorflow.serving.ModelService/GetModelStatus"


class PredictionServiceStub:
    """Client stub for tensorflow.serving.PredictionService (the two calls the gateway makes)."""

    def __init__(self, channel: grpc.Channel):
        self.Predict = channel.unary_unary(
            PREDICT_METHOD,
            request_serializer=pb.PredictRequest.SerializeToString,
            response_deserializer=pb.PredictResponse.FromString,
        )
        self.GetModelMetadata = channel.unary_unary(
            GET_MODEL_METADATA_METHOD,
            request_serializer=pb.GetModelMetadataRequest.SerializeToString,
            response_deserializer=pb.GetModelMetadataResponse.FromString,
        )


class ModelServiceStub:
    """Client stub for tensorflow.serving.ModelService (status only)."""

    def __init__(self, channel: grpc.Channel):
        self.GetModelStatus = channel.unary_unary(
            GET_MODEL_STATUS_METHOD,
            request_serializer=pb.GetModelStatusRequest.SerializeToString,
            response_deserializer=pb.GetModelStatusResponse.FromString,
        )
