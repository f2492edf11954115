"""One package per cloud. Each exposes a provisioner obeying `skybroker.clouds.base`.

Cloud SDKs (boto3, google-cloud-compute, azure-mgmt-*) are imported lazily, inside the
provisioner modules, never at package import time.
"""
