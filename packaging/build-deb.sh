#!/bin/bash
# Build the Debian 12 package of agency-sso, reproducibly.
#
#   packaging/build-deb.sh VERSION BINARY OUTDIR
#
#   VERSION  Debian version of the package, e.g. 0.2.0 (an epoch, 1:0.2.0,
#            is kept in the control file and left out of the file name)
#   BINARY   the x86-64 release binary (target/release/agency-sso)
#   OUTDIR   where agency-sso_VERSION_amd64.deb is written (created if missing)
#
# The same inputs give the same bytes: every file's time is
# SOURCE_DATE_EPOCH (default: the time of the last git commit), owners are
# root:root (--root-owner-group), modes are set here, dpkg-deb sorts the
# archive's entries and dates its members with SOURCE_DATE_EPOCH, and xz
# is held to one thread, so that a machine's core count cannot change the
# bytes (dpkg 1.21.22 gave the same bytes with one and two threads; a
# multi-threaded xz writes its blocks differently).
#
# Needs: dpkg-deb (dpkg) and dpkg-shlibdeps (dpkg-dev), which computes the
# libc dependencies from the binary's dynamic symbols.
set -euo pipefail

usage() {
	echo "usage: $0 VERSION BINARY OUTDIR" >&2
	exit 2
}
[ $# -eq 3 ] || usage
version=$1
binary=$2
outdir=$3

here=$(cd "$(dirname "$0")" && pwd)
debian=$here/debian

# Debian's version syntax: [epoch:]upstream[-revision], starting with a digit.
if ! [[ $version =~ ^([0-9]+:)?[0-9][A-Za-z0-9.+~-]*$ ]]; then
	echo "build-deb: $version is not a Debian version (e.g. 0.2.0 or 0.2.0-1)" >&2
	exit 2
fi
if [ ! -f "$binary" ] || [ ! -x "$binary" ]; then
	echo "build-deb: $binary is not an executable file" >&2
	exit 2
fi
# ELF, 64-bit, x86-64 (e_machine 0x3e): the package is Architecture: amd64.
if [ "$(head -c 4 "$binary" | od -An -c | tr -d ' ')" != '177ELF' ] ||
	[ "$(od -An -t x1 -j 4 -N 1 "$binary" | tr -d ' ')" != 02 ] ||
	[ "$(od -An -t x1 -j 18 -N 2 "$binary" | tr -d ' ')" != 3e00 ]; then
	echo "build-deb: $binary is not an x86-64 ELF binary" >&2
	exit 2
fi
for tool in dpkg-deb dpkg-shlibdeps; do
	if ! command -v "$tool" >/dev/null; then
		echo "build-deb: $tool is missing (apt-get install -y dpkg-dev)" >&2
		exit 2
	fi
done

if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
	if ! SOURCE_DATE_EPOCH=$(git -C "$here" log -1 --format=%ct 2>/dev/null); then
		echo "build-deb: set SOURCE_DATE_EPOCH (not in a git checkout)" >&2
		exit 2
	fi
fi
if ! [[ $SOURCE_DATE_EPOCH =~ ^[0-9]+$ ]]; then
	echo "build-deb: SOURCE_DATE_EPOCH must be a number of seconds" >&2
	exit 2
fi
export SOURCE_DATE_EPOCH
maintainer=${DEB_MAINTAINER:-agency-sso maintainers <agency-sso@localhost>}

# The staging tree is debian/agency-sso inside a scratch folder, where
# dpkg-shlibdeps expects a package's files.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
stage=$work/debian/agency-sso
umask 022

install -d -m 0755 "$stage" "$stage/DEBIAN" "$stage/usr" "$stage/usr/bin" \
	"$stage/lib" "$stage/lib/systemd" "$stage/lib/systemd/system" "$stage/etc"
# postinst gives the folder to root:agency-sso (0750); shipped closed.
install -d -m 0750 "$stage/etc/agency-sso"

install -m 0755 "$binary" "$stage/usr/bin/agency-sso"
# Debian 12 ships units under /lib (merged /usr: the same folder as /usr/lib).
install -m 0644 "$debian/agency-sso.service" "$stage/lib/systemd/system/agency-sso.service"
# Secrets go in here: 0640 from the start, the group is set by postinst.
install -m 0640 "$debian/agency-sso.env" "$stage/etc/agency-sso/agency-sso.env"

for script in postinst prerm postrm; do
	install -m 0755 "$debian/$script" "$stage/DEBIAN/$script"
done
install -m 0644 "$debian/conffiles" "$stage/DEBIAN/conffiles"

# md5sums of every file outside DEBIAN except the conffiles (dpkg tracks
# those itself), for `dpkg --verify` and debsums.
(cd "$stage" && find . -path ./DEBIAN -prune -o -path ./etc -prune -o -type f -printf '%P\0' |
	LC_ALL=C sort -z | xargs -0r md5sum) >"$stage/DEBIAN/md5sums"
chmod 0644 "$stage/DEBIAN/md5sums"

# The shared libraries the binary needs, as package dependencies, e.g.
# "libc6 (>= 2.34), libgcc-s1 (>= 4.2)"; none for a static binary.
mkdir -p "$work/debian"
printf 'Source: agency-sso\n\nPackage: agency-sso\nArchitecture: amd64\n' >"$work/debian/control"
shlibs=$(cd "$work" && dpkg-shlibdeps -O -edebian/agency-sso/usr/bin/agency-sso)
shlibs=${shlibs#shlibs:Depends=}
rm -rf "$work/debian/control"
[ -z "$shlibs" ] || shlibs=", $shlibs"

# Installed-Size in KiB, as dpkg-gencontrol counts it: each file's size
# rounded up to a KiB, one KiB for each folder or link. From sizes, not
# disk blocks, so the file system building it does not change it.
installed_size=$(cd "$stage" && find . -mindepth 1 -path ./DEBIAN -prune -o -printf '%y %s\n' |
	awk '$1 == "f" { n += int(($2 + 1023) / 1024) } $1 != "f" { n += 1 } END { print n }')

sed -e "s|@VERSION@|$version|" \
	-e "s|@MAINTAINER@|$maintainer|" \
	-e "s|@INSTALLED_SIZE@|$installed_size|" \
	-e "s|@SHLIBS_DEPENDS@|$shlibs|" \
	"$debian/control.in" >"$stage/DEBIAN/control"
chmod 0644 "$stage/DEBIAN/control"
if grep -Eq '@[A-Z_]+@' "$stage/DEBIAN/control"; then
	echo "build-deb: a placeholder was left in the control file:" >&2
	grep -E '@[A-Z_]+@' "$stage/DEBIAN/control" >&2
	exit 1
fi

# Every time stamp is SOURCE_DATE_EPOCH.
find "$stage" -exec touch --no-dereference --date="@$SOURCE_DATE_EPOCH" {} +

mkdir -p "$outdir"
deb=$outdir/agency-sso_${version#*:}_amd64.deb
dpkg-deb --root-owner-group -Zxz -z6 --threads-max=1 --build "$stage" "$deb" >/dev/null
echo "$deb"
