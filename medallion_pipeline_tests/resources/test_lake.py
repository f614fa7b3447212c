"""Lake file operations on S3 (moto over HTTP): what publishing and vacuum rely on."""

from __future__ import annotations

import boto3

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
