#!/bin/sh
# Installs jobmgr as a system service: the binary into $PREFIX/bin, the
# systemd unit, and the unprivileged user `jobmgr`; then starts it.
#
#   sudo packaging/install.sh [BINARY]        # default: target/release/jobmgr
#
# With DESTDIR set (packaging into a staging root), only the files are
# placed: no user is created and systemd is not touched.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
binary=${1:-$here/../target/release/jobmgr}
prefix=${PREFIX:-/usr/local}
destdir=${DESTDIR:-}
unit_dir=${UNIT_DIR:-/etc/systemd/system}

die() { echo "install.sh: $*" >&2; exit 1; }

[ -x "$binary" ] || die "no executable at $binary (build it first: cargo build --release)"
"$binary" --version >/dev/null 2>&1 || die "$binary does not run"

install -d -m 0755 "$destdir$prefix/bin" "$destdir$unit_dir"
install -m 0755 "$binary" "$destdir$prefix/bin/jobmgr"
# The unit names /usr/local/bin/jobmgr; follow another PREFIX.
sed "s|/usr/local/bin/jobmgr|$prefix/bin/jobmgr|" "$here/systemd/jobmgr.service" \
    > "$destdir$unit_dir/jobmgr.service"
chmod 0644 "$destdir$unit_dir/jobmgr.service"
echo "installed $destdir$prefix/bin/jobmgr and $destdir$unit_dir/jobmgr.service"

[ -z "$destdir" ] || exit 0

[ "$(id -u)" -eq 0 ] || die "creating the user and starting the service needs root (or set DESTDIR)"
if ! id jobmgr >/dev/null 2>&1; then
    useradd --system --user-group --home-dir /var/lib/jobmgr --no-create-home \
        --shell /usr/sbin/nologin jobmgr
    echo "created system user jobmgr"
fi
systemctl daemon-reload
systemctl enable jobmgr.service
# A running service is restarted onto the new binary (an upgrade).
systemctl restart jobmgr.service
echo "jobmgr is running; its admin URL and token: journalctl -u jobmgr | grep 'jobmgr admin:'"
