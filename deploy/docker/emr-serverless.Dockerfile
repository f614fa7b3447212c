# syntax=docker/dockerfile:1
# The EMR Serverless custom image: the alternative to the job bundle's pyenv.tar.gz (`medallion package-job`).
# The Spark driver and executors get Python 3.11 with the driver's dependencies from the image instead of
# unpacking the archive in every job run. Build it from the repository root (the build context):
#
#   docker build --platform linux/amd64 -f deploy/docker/emr-serverless.Dockerfile \
#     -t <account>.dkr.ecr.<region>.amazonaws.com/medallion-emr:$(git rev-parse --short HEAD) .
#
# (--platform linux/arm64 for an ARM64 application), push it to ECR in the application's region, check it with
# AWS's amazon-emr-serverless-image-cli (validate-image, release emr-7.5.0, type spark), and set it as the
# application's image (imageConfiguration; the application must be stopped to change it).
#
# When to pick which:
# - The job bundle (default): no image registry or image builds; a code change re-uploads a small zip. Its
#   pyenv.tar.gz (~115 MB) must be built on Amazon Linux 2023 for the application's architecture and is fetched
#   and unpacked by the driver and every executor of every job run.
# - This image: when the driver needs OS packages or native libraries pip cannot ship, when job-run start time
#   or executor scale-out matters (nothing to unpack), or when images must pass the organization's registry
#   scanning. Every code change is then an image build, push and application update.
# Using it: set MEDALLION_EMR_PYTHON=image on the Dagster side. The launcher then names the entry point copied
# below (local:///opt/medallion/entrypoint.py) and sends no spark.archives, spark.submit.pyFiles or Python
# paths (they would override this image's); MEDALLION_EMR_JOB_BUNDLE_URI is not needed.

# The wheel is pure Python: built in the same pinned Python image as the code location (digest: see there).
FROM python:3.11.13-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY medallion_pipeline ./medallion_pipeline
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# The base of the exact release the application runs (Settings.emr_release_label, MEDALLION_EMR_RELEASE_LABEL:
# Spark 3.5 on Amazon Linux 2023). AWS publishes one repository per release and refreshes its `latest` with
# patched builds (dated tags exist too); the runbook's deploy step pins the digest it validated.
FROM public.ecr.aws/emr-serverless/spark/emr-7.5.0:latest
USER root
RUN dnf install -y python3.11 python3.11-pip && dnf clean all

# --no-deps throughout, as package-job leaves them out: PySpark and py4j come from EMR's Spark (spark-submit
# puts them on PYTHONPATH) and must not shadow it; dagster is never imported by the driver.
COPY deploy/docker/requirements-emr-driver.txt /opt/medallion/requirements.txt
COPY --from=build /wheels /tmp/wheels
RUN python3.11 -m venv /opt/medallion/venv \
    && /opt/medallion/venv/bin/pip install --no-cache-dir --no-deps -r /opt/medallion/requirements.txt \
    && /opt/medallion/venv/bin/pip install --no-cache-dir --no-deps /tmp/wheels/*.whl \
    && rm -rf /tmp/wheels \
    && cp "$(/opt/medallion/venv/bin/python -c 'import medallion_pipeline.jobs.entrypoint as m; print(m.__file__)')" \
        /opt/medallion/entrypoint.py

# The system python3 (3.9) stays what EMR's own scripts use; Spark's Python processes use the venv.
ENV PYSPARK_PYTHON=/opt/medallion/venv/bin/python \
    PYSPARK_DRIVER_PYTHON=/opt/medallion/venv/bin/python

# EMR Serverless runs the image as hadoop and requires it to end so.
USER hadoop:hadoop
