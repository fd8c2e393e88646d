#!/usr/bin/env bash
# `npm run restore:postgres -- <PGDATA> [<base backup dir> | latest] [<target time> | immediate | latest]`
# Prepares an empty (or missing) PGDATA from a base backup under $BACKUP_DIR/base and the WAL
# archive $BACKUP_DIR/wal for point-in-time recovery:
#   immediate      the moment the base backup ended (the default);
#   <target time>  e.g. '2026-12-07 15:04:05+00': replays archived WAL up to it;
#   latest         replays every archived segment (the newest state the archive holds).
# Then start PostgreSQL on PGDATA (it replays, then promotes), and run `npm run restore:epochs`
# with the hubs still stopped. Run as the user PostgreSQL runs as (PGDATA must be theirs, 0700).
set -euo pipefail
: "${BACKUP_DIR:?BACKUP_DIR is required}"
pgdata="${1:?usage: pg-restore.sh <PGDATA> [<backup dir>|latest] [<time>|immediate|latest]}"
backup="${2:-latest}"
target="${3:-immediate}"
if [ "$backup" = latest ]; then
  backup="$(find "$BACKUP_DIR/base" -mindepth 1 -maxdepth 1 -type d -name '2*' | sort | tail -n1)"
  [ -n "$backup" ] || { echo "pg-restore: no base backup in $BACKUP_DIR/base" >&2; exit 1; }
fi
[ -f "$backup/base.tar.gz" ] || { echo "pg-restore: $backup holds no base.tar.gz" >&2; exit 1; }
if [ -d "$pgdata" ] && [ -n "$(ls -A "$pgdata")" ]; then
  echo "pg-restore: $pgdata is not empty; move the damaged cluster aside first" >&2
  exit 1
fi
mkdir -p "$pgdata"
chmod 700 "$pgdata"
tar -xzf "$backup/base.tar.gz" -C "$pgdata"
mkdir -p "$pgdata/pg_wal"
tar -xzf "$backup/pg_wal.tar.gz" -C "$pgdata/pg_wal"
wal="$(cd "$BACKUP_DIR/wal" && pwd)"
{
  echo "# recovery from $backup"
  echo "restore_command = 'cp \"$wal/%f\" \"%p\"'"
  case "$target" in
    immediate) echo "recovery_target = 'immediate'" ;;
    latest) ;;
    *) echo "recovery_target_time = '$target'" ;;
  esac
  echo "recovery_target_action = 'promote'"
} >>"$pgdata/postgresql.auto.conf"
touch "$pgdata/recovery.signal"
echo "PGDATA $pgdata prepared from $backup (target: $target); start PostgreSQL, then npm run restore:epochs"
