#!/usr/bin/env bash
# PySpark (the Spark engine's tests, `dbt build --target spark`) needs Java 17 or newer:
# install a headless JRE with apt-get when it is missing (needs root, as on CI machines).
set -euo pipefail
java_major() { java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1; }
if ! command -v java >/dev/null 2>&1 || [ "$(java_major)" -lt 17 ] 2>/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends openjdk-17-jre-headless >/dev/null
fi
