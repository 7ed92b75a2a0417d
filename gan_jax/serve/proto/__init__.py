"""Protocol buffers of the gRPC API (see kserve_v2.proto)."""
