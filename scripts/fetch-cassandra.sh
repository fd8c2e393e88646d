#!/usr/bin/env bash
# Fetch Apache Cassandra (cassandra-all + runtime dependencies) from Maven Central
# into <repo>/.cache/cassandra/lib, for the test harness (test/helpers/cassandra.ts).
#
# Idempotent: when the jars for the pinned version are already there, exits at once.
# Usage: bash scripts/fetch-cassandra.sh
# Env:   CASSANDRA_VERSION (default below), MVN (default: mvn)
set -euo pipefail

CASSANDRA_VERSION="${CASSANDRA_VERSION:-5.0.9}"
MVN="${MVN:-mvn}"

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
CACHE_DIR="$REPO_ROOT/.cache/cassandra"
LIB_DIR="$CACHE_DIR/lib"
MARKER="$LIB_DIR/.complete-$CASSANDRA_VERSION"

log() { echo "fetch-cassandra: $*" >&2; }

already_there() {
  [[ -f "$MARKER" ]] && compgen -G "$LIB_DIR/cassandra-all-$CASSANDRA_VERSION.jar" >/dev/null
}

if already_there; then
  log "cassandra $CASSANDRA_VERSION already in $LIB_DIR ($(find "$LIB_DIR" -name '*.jar' | wc -l) jars); nothing to do"
  exit 0
fi

command -v "$MVN" >/dev/null 2>&1 || { log "error: '$MVN' not found (Maven 3 is required)"; exit 1; }
command -v java >/dev/null 2>&1 || { log "error: 'java' not found (Java 17 is required)"; exit 1; }

mkdir -p "$CACHE_DIR"
# One fetch at a time (parallel test processes may all find the jars missing).
if command -v flock >/dev/null 2>&1; then
  exec 9>"$CACHE_DIR/.lock"
  flock 9
  if already_there; then
    log "cassandra $CASSANDRA_VERSION was fetched by another process meanwhile; nothing to do"
    exit 0
  fi
fi
POM="$CACHE_DIR/pom.xml"
TMP_LIB="$CACHE_DIR/lib.tmp.$$"
trap 'rm -rf "$TMP_LIB"' EXIT

log "writing throwaway pom $POM (cassandra-all $CASSANDRA_VERSION)"
cat > "$POM" <<POM
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0"
         xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
         xsi:schemaLocation="http://maven.apache.org/POM/4.0.0 http://maven.apache.org/xsd/maven-4.0.0.xsd">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.test</groupId>
  <artifactId>cassandra-fetch</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.cassandra</groupId>
      <artifactId>cassandra-all</artifactId>
      <version>$CASSANDRA_VERSION</version>
    </dependency>
  </dependencies>
  <build>
    <plugins>
      <plugin>
        <groupId>org.apache.maven.plugins</groupId>
        <artifactId>maven-dependency-plugin</artifactId>
        <version>3.6.1</version>
      </plugin>
    </plugins>
  </build>
</project>
POM

log "downloading cassandra-all $CASSANDRA_VERSION and its runtime dependencies with Maven (this takes a minute)"
rm -rf "$TMP_LIB"
# Debian's Maven 3.8 prints ANSI resets even with -B: strip them, keep real messages, on stderr.
if ! "$MVN" -q -B -f "$POM" \
  org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies \
  -DincludeScope=runtime \
  -DoutputDirectory="$TMP_LIB" 2>&1 |
  sed -e $'s/\x1b\\[[0-9;]*m//g' -e '/^[[:space:]]*$/d' >&2; then
  log "error: Maven failed to fetch cassandra-all $CASSANDRA_VERSION (see above)"
  exit 1
fi

if ! compgen -G "$TMP_LIB/cassandra-all-$CASSANDRA_VERSION.jar" >/dev/null; then
  log "error: cassandra-all-$CASSANDRA_VERSION.jar missing after Maven run"
  exit 1
fi

rm -rf "$LIB_DIR"
mv "$TMP_LIB" "$LIB_DIR"
touch "$MARKER"
log "done: $(find "$LIB_DIR" -name '*.jar' | wc -l) jars in $LIB_DIR"
