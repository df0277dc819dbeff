#!/usr/bin/env bash
# Installs a Kafka broker (Maven-resolved jars, KRaft, no ZooKeeper) for the ingestion tests,
# cached outside the repo: ~/.cache/shoal/kafka-<version>/libs. Idempotent; prints the libs dir.
# Needs Java 17+ and Maven (Maven Central only).
set -euo pipefail
version="${SHOAL_KAFKA_VERSION:-4.1.1}"
slf4j="1.7.36"
dest="${XDG_CACHE_HOME:-$HOME/.cache}/shoal/kafka-$version"
if [ -f "$dest/.complete" ]; then
  echo "$dest/libs"
  exit 0
fi
for tool in java mvn; do
  command -v "$tool" >/dev/null 2>&1 || { echo "kafka.sh: $tool is required (apt-get install openjdk-17-jre-headless maven)" >&2; exit 1; }
done
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cat > "$work/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>shoal</groupId><artifactId>kafka-broker</artifactId><version>1</version>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$version</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-simple</artifactId><version>$slf4j</version></dependency>
  </dependencies>
</project>
POM
(cd "$work" && mvn -q -B dependency:copy-dependencies -DoutputDirectory=libs -DincludeScope=runtime >&2)
mkdir -p "$dest"
rm -rf "$dest/libs"
mv "$work/libs" "$dest/libs"
touch "$dest/.complete"
echo "$dest/libs"
