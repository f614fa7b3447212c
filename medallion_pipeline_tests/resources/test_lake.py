"""Lake file operations on S3 (moto over HTTP): what publishing and vacuum rely on."""

from __future__ import annotations

import json
import time

import boto3
import pytest

from medallion_pipeline.resources.lake import S3LakeFiles, lake_files_for


def test_s3_lists_version_partitions_and_deletes_one_tree(aws):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="lake")
    for key in ("silver/app_logs/v1/dt=2024-01-01/part-0.parquet", "silver/app_logs/v1/dt=2024-01-02/part-0.parquet",
                "silver/app_logs/v1/_SUCCESS", "silver/app_logs/v1/_temporary/0/x", "silver/app_logs/v10/dt=2024-01-01/p"):
        s3.put_object(Bucket="lake", Key=key, Body=b"x")
    files = lake_files_for("s3://lake")
    assert isinstance(files, S3LakeFiles)

    children = files.list_children("s3://lake/silver/app_logs/v1")
    assert sorted(path for path, _ in children) == [
        "s3://lake/silver/app_logs/v1/dt=2024-01-01", "s3://lake/silver/app_logs/v1/dt=2024-01-02"]
    assert all(mtime > 0 for _, mtime in children)

    files.delete_tree("s3://lake/silver/app_logs/v1")
    remaining = [o["Key"] for o in s3.list_objects_v2(Bucket="lake")["Contents"]]
    assert remaining == ["silver/app_logs/v10/dt=2024-01-01/p"]  # a sibling sharing the prefix "v1" survives
    files.delete_tree("s3://lake/silver/app_logs/missing")


def put_objects(s3, bucket: str, keys: list[str]) -> None:
    """Many small objects; a few threads, since moto answers one PUT in ≈8 ms (FIELD_NOTES)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda key: s3.put_object(Bucket=bucket, Key=key, Body=b"x"), keys))


def delete_batch_sizes(files: S3LakeFiles) -> list[int]:
    """The number of keys in each DeleteObjects request ``files`` sends (botocore's event hooks): moto does not
    enforce the 1,000-key limit, so the batches are counted instead."""
    sizes: list[int] = []
    files.client.meta.events.register(
        "provide-client-params.s3.DeleteObjects", lambda params, **_: sizes.append(len(params["Delete"]["Objects"])))
    return sizes


def test_s3_listing_and_deleting_follow_pages_beyond_1000_objects(aws):
    """1,005 objects below one table: S3 (and moto) answer a listing 1,000 keys at a time."""
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="lake")
    root = "gold/daily_kpis"
    # 999 versions with one file, and v0999 with six: its first file ends page one, the other five are page two.
    keys = [f"{root}/v{i:04d}/dt=2024-01-01/part-0.parquet" for i in range(999)]
    keys += [f"{root}/v0999/dt=2024-01-0{d}/part-0.parquet" for d in range(1, 6)]
    put_objects(s3, "lake", keys)
    siblings = [f"{root}_archive/v0001/dt=2024-01-01/part-0.parquet", f"{root}2/v0001/dt=2024-01-01/part-0.parquet"]
    put_objects(s3, "lake", siblings)
    time.sleep(1.1)  # LastModified has one-second resolution
    newest = f"{root}/v0999/dt=2024-01-09/part-0.parquet"  # the table's 1,005th key, the last one listed
    s3.put_object(Bucket="lake", Key=newest, Body=b"x")
    files = S3LakeFiles()

    children = dict(files.list_children(f"s3://lake/{root}"))
    assert len(children) == 1000  # v0999 spans two pages and is listed once
    assert sorted(children) == [f"s3://lake/{root}/v{i:04d}" for i in range(1000)]
    newest_mtime = s3.head_object(Bucket="lake", Key=newest)["LastModified"].timestamp()
    assert children[f"s3://lake/{root}/v0999"] == newest_mtime  # found on the second page
    assert children[f"s3://lake/{root}/v0000"] < newest_mtime

    sizes = delete_batch_sizes(files)
    files.delete_tree(f"s3://lake/{root}")
    assert sizes == [1000, 5]
    remaining = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket="lake")
                 for o in page.get("Contents", [])]
    assert sorted(remaining) == sorted(siblings)  # prefixes that merely start with "daily_kpis" survive


def test_s3_delete_tree_of_a_prefix_leaves_its_siblings(aws):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="lake")
    keep = ["gold/daily_kpis/v2/dt=2024-01-01/part-0.parquet", "gold/daily_kpis/v1x/dt=2024-01-01/part-0.parquet",
            "gold/daily_kpis/v1.json"]
    put_objects(s3, "lake", ["gold/daily_kpis/v1/dt=2024-01-01/part-0.parquet",
                             "gold/daily_kpis/v1/dt=2024-01-02/part-0.parquet", "gold/daily_kpis/v1/_SUCCESS", *keep])
    files = S3LakeFiles()
    sizes = delete_batch_sizes(files)
    files.delete_tree("s3://lake/gold/daily_kpis/v1/")
    assert sizes == [3]
    assert sorted(o["Key"] for o in s3.list_objects_v2(Bucket="lake")["Contents"]) == sorted(keep)
    assert sorted(path for path, _ in files.list_children("s3://lake/gold/daily_kpis")) == [
        "s3://lake/gold/daily_kpis/v1x", "s3://lake/gold/daily_kpis/v2"]  # v1.json is a file, not a child
    with pytest.raises(ValueError, match="whole bucket"):
        files.delete_tree("s3://lake/")


def test_s3_delete_tree_raises_on_keys_s3_refused(aws):
    """DeleteObjects answers 200 and lists refused keys in ``Errors``: they must not pass for deleted.

    moto checks a bucket policy per key in DeleteObjects and reports a denied key as an ``AccessDenied``
    error, as S3 does, so a real per-key error comes back over HTTP (no stubbed client needed).
    """
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="lake")
    put_objects(s3, "lake", ["gold/daily_kpis/v1/dt=2024-01-01/part-0.parquet",
                             "gold/daily_kpis/v1/dt=2024-01-02/part-0.parquet",
                             "gold/daily_kpis/v1/dt=2024-01-02/part-1.parquet",
                             "gold/daily_kpis/v2/dt=2024-01-01/part-0.parquet"])
    s3.put_bucket_policy(Bucket="lake", Policy=json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Deny", "Principal": "*", "Action": "s3:DeleteObject",
        "Resource": "arn:aws:s3:::lake/gold/daily_kpis/v1/dt=2024-01-02/*"}]}))
    files = S3LakeFiles()

    with pytest.raises(OSError, match=r"s3://lake/gold/daily_kpis/v1/dt=2024-01-02/part-0\.parquet: AccessDenied"
                                      r".*\(and 1 more keys\)"):
        files.delete_tree("s3://lake/gold/daily_kpis/v1")
    remaining = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="lake")["Contents"])
    assert remaining == ["gold/daily_kpis/v1/dt=2024-01-02/part-0.parquet",
                         "gold/daily_kpis/v1/dt=2024-01-02/part-1.parquet",
                         "gold/daily_kpis/v2/dt=2024-01-01/part-0.parquet"]

    files.delete_tree("s3://lake/gold/daily_kpis/v2")  # the same policy allows this one: no error
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="lake", Prefix="gold/daily_kpis/v2/").get("Contents", [])] == []
