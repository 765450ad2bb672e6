#!/usr/bin/env bash
# Checks .ci/apt-mirror.sh: the Debian mirror is read from apt's one-line and
# deb822 source files, the suite must match exactly, disabled and deb-src
# entries do not count, and DEBIAN_MIRROR wins. Run by .ci/packaging.sh
# before it uses the mirror; runs anywhere (no root, no network).
set -euo pipefail
cd "$(dirname "$0")"
. ./apt-mirror.sh
unset DEBIAN_MIRROR
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
check() { # NAME WANT GOT
	if [ "$2" = "$3" ]; then
		echo "   ok: $1"
	else
		echo "apt-mirror-test: FAIL: $1: got '$3', want '$2'" >&2
		fails=$((fails + 1))
	fi
}
etc() { # NAME: a fresh /etc/apt look-alike
	rm -rf "$tmp/$1"
	mkdir -p "$tmp/$1/sources.list.d"
	echo "$tmp/$1"
}

# One-line format, sources.list: comments, deb-src, another suite and
# options before the URI are skipped or understood.
e=$(etc oneline)
cat >"$e/sources.list" <<'SRC'
# deb http://commented.example/debian bookworm main
deb-src http://src.example/debian bookworm main
deb http://security.example/debian-security bookworm-security main
deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://mirror.example/debian/ bookworm main contrib
deb http://late.example/debian bookworm main
SRC
check "sources.list with options" "http://mirror.example/debian" "$(apt_mirror bookworm "$e")"
check "the security suite is its own" "http://security.example/debian-security" "$(apt_mirror bookworm-security "$e")"

e=$(etc oneline-spaced)
printf 'deb [ arch=arm64 ] https://spaced.example/debian bookworm main\n' >"$e/sources.list.d/spaced.list"
check "*.list with spaced options" "https://spaced.example/debian" "$(apt_mirror bookworm "$e")"

# deb822 format, as Debian 12 containers ship it (debian.sources).
e=$(etc deb822)
cat >"$e/sources.list.d/debian.sources" <<'SRC'
Types: deb
# http://snapshot.example/archive/debian/20250520T000000Z
URIs: http://deb822.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb822.example/debian-security
Suites: bookworm-security
Components: main
SRC
check "deb822 .sources" "http://deb822.example/debian" "$(apt_mirror bookworm "$e")"
check "deb822 second stanza" "http://deb822.example/debian-security" "$(apt_mirror bookworm-security "$e")"

# deb822: disabled stanzas, deb-src only, continuation lines, several URIs.
e=$(etc deb822-more)
cat >"$e/sources.list.d/a.sources" <<'SRC'
Types: deb
URIs: http://disabled.example/debian
Suites: bookworm
Enabled: no

Types: deb-src
URIs: http://src.example/debian
Suites: bookworm

Types: deb deb-src
URIs: mirror+file:///etc/apt/mirrors.txt
 http://continued.example/debian
Suites: trixie
 bookworm
Components: main
SRC
check "deb822 continuation lines, disabled and deb-src skipped" "http://continued.example/debian" "$(apt_mirror bookworm "$e")"

# sources.list wins over sources.list.d, as apt reads it first.
e=$(etc both)
echo "deb http://first.example/debian bookworm main" >"$e/sources.list"
printf 'Types: deb\nURIs: http://second.example/debian\nSuites: bookworm\n' >"$e/sources.list.d/debian.sources"
check "sources.list first" "http://first.example/debian" "$(apt_mirror bookworm "$e")"

# Nothing for the suite: a clear error; files named *.disabled are not read.
e=$(etc none)
echo "deb http://other.example/debian trixie main" >"$e/sources.list"
echo "deb http://off.example/debian bookworm main" >"$e/sources.list.d/off.list.disabled"
if out=$(apt_mirror bookworm "$e" 2>&1); then
	check "no source for the suite fails" "an error" "$out"
else
	case $out in
	*"no enabled 'deb' source for suite bookworm"*"set DEBIAN_MIRROR"*) echo "   ok: no source for the suite fails clearly" ;;
	*) check "the error says what to do" "no enabled 'deb' source … set DEBIAN_MIRROR" "$out" ;;
	esac
fi

# The environment override wins.
check "DEBIAN_MIRROR wins" "http://override.example/debian" "$(DEBIAN_MIRROR=http://override.example/debian apt_mirror bookworm "$e")"

if [ "$fails" -gt 0 ]; then
	echo "apt-mirror-test: $fails check(s) failed" >&2
	exit 1
fi
echo "apt-mirror-test: ok"
