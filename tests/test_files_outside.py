"""Files outside Redis (JOBSITE_FILES_URL): an application's files go to an S3-compatible store (moto's standalone
server, over HTTP) before its receipt, the worker that delivers reads them there, and they leave the store once Lever
has them; an unreachable store at intake spools the application, and at delivery delays it: nothing is lost."""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import redis
from moto.server import ThreadedMotoServer

from jobsite.intake.accept import drain_spool
from jobsite.records import spool, store, uploads
from jobsite.records.store import State
from jobsite.services import Services
from jobsite.settings import ConfigError, Settings, load_settings
from jobsite.web.app import create_app

from .helpers import Sandbox, Workers, file_posting, free_port, lever_body, wait_for, worker_env

BUCKET = "jobsite-files"


class Store:
    """moto's S3 server on a free port, which a test can stop and start again (its buckets live on meanwhile)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.env = {
            "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{self.port}",
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        self.server: ThreadedMotoServer | None = None
        self.start()

    def start(self) -> None:
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def client(self):
        return boto3.client(
            "s3",
            endpoint_url=self.env["AWS_ENDPOINT_URL_S3"],
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )

    def keys(self, prefix: str = "") -> list[str]:
        return [o["Key"] for o in self.client().list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])]


@pytest.fixture(scope="module")
def s3() -> Iterator[Store]:
    found = Store()
    found.client().create_bucket(Bucket=BUCKET)
    with pytest.MonkeyPatch.context() as mp:  # this process's S3 client (the web's) reads them too
        for name, value in found.env.items():
            mp.setenv(name, value)
        uploads._s3.cache_clear()
        yield found
    uploads._s3.cache_clear()
    found.stop()


@pytest.fixture
def outside(settings: Settings, s3: Store) -> Settings:
    return load_settings({}, **{**settings.__dict__, "files_url": f"s3://{BUCKET}/apps"})


def submit(s: Settings, sandbox: Sandbox, resume: bytes, n: int = 0) -> dict:
    posting = file_posting(sandbox)
    answer = (
        create_app(s)
        .test_client()
        .post(
            f"/api/v1/postings/{posting['id']}/applications",
            data={
                "application": json.dumps(lever_body(sandbox, posting["id"], n)),
                "resume": (io.BytesIO(resume), "cv.pdf"),
            },
        )
    )
    assert answer.status_code == 202, answer.get_data(as_text=True)
    return answer.get_json()


def sent_file(sandbox: Sandbox) -> str:
    [upload] = sandbox.state.uploads.values()
    return str(upload["sha256"])


def test_files_url_must_name_a_bucket() -> None:
    assert load_settings({"JOBSITE_FILES_URL": "s3://b/p"}, secret_key="x").files_url == "s3://b/p"
    for bad in ("https://b/p", "s3:///p", "b/p"):
        with pytest.raises(ConfigError, match="JOBSITE_FILES_URL"):
            load_settings({"JOBSITE_FILES_URL": bad}, secret_key="x")


def test_files_go_to_the_store_before_the_receipt_and_leave_it_once_lever_has_them(
    outside: Settings, s3: Store, r: redis.Redis, sandbox: Sandbox, workers: Workers
) -> None:
    resume = b"%PDF-1.7\n" + os.urandom(300_000)
    receipt = submit(outside, sandbox, resume)["receipt"]
    [f] = store.load(r, receipt).files
    assert f["object"] == f"s3://{BUCKET}/apps/{receipt}/0"
    assert s3.client().get_object(Bucket=BUCKET, Key=f"apps/{receipt}/0")["Body"].read() == resume
    assert r.hkeys(f"upload:{receipt}") == [b"@outside"]  # Redis holds where, not what
    assert r.memory_usage(f"upload:{receipt}") < 1000

    workers.start(worker_env(outside, **s3.env, JOBSITE_FILES_URL=outside.files_url or ""))
    wait_for(lambda: store.load(r, receipt).state == State.DELIVERED, timeout=60, what="delivery")
    assert sent_file(sandbox) == hashlib.sha256(resume).hexdigest()  # read from the store, byte for byte
    wait_for(
        lambda: s3.keys(f"apps/{receipt}/") == [] and not r.zcard(uploads.OUTSIDE),
        timeout=30,
        what="the delivered file to leave the store",
    )


def test_an_unreachable_store_at_intake_spools_the_application_and_nothing_is_lost(
    outside: Settings, s3: Store, r: redis.Redis, sandbox: Sandbox, workers: Workers
) -> None:
    resume = b"%PDF-1.7\n" + os.urandom(50_000)
    s3.stop()
    try:
        answer = submit(outside, sandbox, resume)
    finally:
        s3.start()
    assert answer["status"] == State.WAITING.public
    assert [p.name.endswith(f"{answer['receipt']}.json") for p in spool.entries(outside.data_dir)] == [True]
    assert drain_spool(Services(outside).intake) == 1  # the store is back: the files go there, the record to Redis
    assert s3.keys(f"apps/{answer['receipt']}/") == [f"apps/{answer['receipt']}/0"]
    workers.start(worker_env(outside, **s3.env))
    wait_for(lambda: store.load(r, answer["receipt"]).state == State.DELIVERED, timeout=60, what="delivery")
    assert sent_file(sandbox) == hashlib.sha256(resume).hexdigest()


def test_an_unreachable_store_at_delivery_delays_it_and_nothing_is_lost(
    outside: Settings, s3: Store, r: redis.Redis, sandbox: Sandbox, workers: Workers, tmp_path: Path
) -> None:
    resume = b"%PDF-1.7\n" + os.urandom(50_000)
    receipt = submit(outside, sandbox, resume)["receipt"]
    log = tmp_path / "worker.log"
    s3.stop()
    try:
        workers.start(worker_env(outside, **s3.env, JOBSITE_LOG_LEVEL="INFO"), log=log)
        wait_for(
            lambda: "FilesUnreachable" in log.read_text(errors="replace"),
            timeout=60,
            what="the worker to find the store unreachable",
        )
        record = store.load(r, receipt)
        assert record.state not in (State.DELIVERED, State.NEEDS_ATTENTION)
    finally:
        s3.start()
    wait_for(lambda: store.load(r, receipt).state == State.DELIVERED, timeout=90, interval=0.2, what="delivery")
    assert len(sandbox.received()["applications"]) == 1
    assert sent_file(sandbox) == hashlib.sha256(resume).hexdigest()
