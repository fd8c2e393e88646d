#!/usr/bin/env bash
# `npm run backup:postgres`: a base backup of the PostgreSQL cluster behind DATABASE_URL, into
# $BACKUP_DIR/base/<UTC time>/ (base.tar.gz, pg_wal.tar.gz, backup_manifest, start-wal), then
# retention: the newest $BACKUP_KEEP base backups (default 7) are kept, older ones deleted, and
# archived WAL older than the oldest kept backup removed (pg_archivecleanup). Together with the
# WAL archive (pg-archive-wal.sh) this allows a restore to any moment since the oldest kept
# backup (docs/backups.md). The user in DATABASE_URL needs the REPLICATION attribute.
set -euo pipefail
: "${DATABASE_URL:?DATABASE_URL is required}"
: "${BACKUP_DIR:?BACKUP_DIR is required (the WAL archive is \$BACKUP_DIR/wal)}"
keep="${BACKUP_KEEP:-7}"
bin="${PG_BIN:-/usr/lib/postgresql/15/bin}"
[[ "$keep" =~ ^[1-9][0-9]*$ ]] || { echo "BACKUP_KEEP must be a whole number >= 1" >&2; exit 2; }
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
dest="$BACKUP_DIR/base/$stamp"
mkdir -p "$BACKUP_DIR/base" "$BACKUP_DIR/wal"
tmp="$BACKUP_DIR/base/.$stamp.partial"
rm -rf "$tmp"
# Tar format, compressed; the WAL needed to make the copy consistent streams beside it, so the
# backup restores on its own even if the archive is lost; --checkpoint=fast starts it at once.
"$bin/pg_basebackup" -d "$DATABASE_URL" -D "$tmp" -Ft -z -X stream --checkpoint=fast -l "hubbub $stamp"
start="$(tar -xzOf "$tmp/base.tar.gz" backup_label | sed -n 's/^START WAL LOCATION: .*(file \([0-9A-F]\{24\}\)).*/\1/p')"
[ -n "$start" ] || { echo "pg-base-backup: no start WAL file in backup_label" >&2; exit 1; }
echo "$start" >"$tmp/start-wal"
date -u +%Y-%m-%dT%H:%M:%SZ >"$tmp/finished-at"
mv "$tmp" "$dest"
echo "base backup $dest (starts at WAL $start)"

# Retention: newest $keep base backups; WAL before the oldest kept one is of no use any more.
mapfile -t all < <(find "$BACKUP_DIR/base" -mindepth 1 -maxdepth 1 -type d -name '2*' | sort)
if [ "${#all[@]}" -gt "$keep" ]; then
  for old in "${all[@]:0:${#all[@]}-keep}"; do
    rm -rf "$old"
    echo "pruned $old"
  done
fi
oldest="$(find "$BACKUP_DIR/base" -mindepth 1 -maxdepth 1 -type d -name '2*' | sort | head -n1)"
"$bin/pg_archivecleanup" "$BACKUP_DIR/wal" "$(cat "$oldest/start-wal")"
