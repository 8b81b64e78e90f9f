"""A real S3 HTTP server on loopback for the raw-archive tests: moto's, on a free port, one bucket.

moto's server speaks S3's REST protocol over real HTTP (signatures are accepted as given), so obstore
talks to it exactly as to AWS, MinIO or R2 through AWS_ENDPOINT_URL; the credentials are dummies.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

BUCKET = "pulse-test"
DUMMY_SECRET = "dummy-secret-never-shown"  # tests check it appears in no message or log


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def s3_env(endpoint: str) -> dict[str, str]:
    """The standard AWS variables obstore reads, for an S3-compatible endpoint over plain http."""
    return {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "dummy-key-id", "AWS_SECRET_ACCESS_KEY": DUMMY_SECRET,
            "AWS_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true"}


@dataclass
class S3Server:
    endpoint: str
    bucket: str
    client: Any  # a boto3 S3 client on it (to look at or plant objects)
    server: Any

    @property
    def env(self) -> dict[str, str]:
        return s3_env(self.endpoint)

    def keys(self, prefix: str = "") -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


@contextlib.contextmanager
def s3_server(bucket: str = BUCKET) -> Iterator[S3Server]:
    import boto3
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                              aws_access_key_id="dummy-key-id", aws_secret_access_key=DUMMY_SECRET)
        client.create_bucket(Bucket=bucket)
        yield S3Server(endpoint, bucket, client, server)
    finally:
        server.stop()
