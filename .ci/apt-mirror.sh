# Sourced by .ci/packaging.sh and .ci/apt-mirror-test.sh: find the Debian
# mirror this machine's apt already uses, so debootstrap downloads from where
# apt works and no host name lives in the repository.

# apt_mirror SUITE [ETC_APT]: print the URI of the first enabled `deb`
# source for SUITE (e.g. bookworm) in ETC_APT (default /etc/apt): the
# one-line format in sources.list and sources.list.d/*.list, and the deb822
# format in sources.list.d/*.sources. The suite must match exactly, so
# bookworm-updates and bookworm-security (other archives) do not count.
# DEBIAN_MIRROR, when set, wins. Fails with a message naming the files read
# when nothing matches.
apt_mirror() {
	local suite=$1 etc=${2:-/etc/apt}
	if [ -n "${DEBIAN_MIRROR:-}" ]; then
		echo "$DEBIAN_MIRROR"
		return 0
	fi
	local files=() f uri
	[ -f "$etc/sources.list" ] && files+=("$etc/sources.list")
	for f in "$etc"/sources.list.d/*.list "$etc"/sources.list.d/*.sources; do
		[ -f "$f" ] && files+=("$f")
	done
	for f in "${files[@]}"; do
		case $f in
		*.sources) uri=$(apt_mirror_deb822 "$suite" <"$f") ;;
		*) uri=$(apt_mirror_oneline "$suite" <"$f") ;;
		esac
		if [ -n "$uri" ]; then
			echo "${uri%/}"
			return 0
		fi
	done
	echo "apt_mirror: no enabled 'deb' source for suite $suite in ${files[*]:-$etc (no source files)}; set DEBIAN_MIRROR" >&2
	return 1
}

# apt_mirror_oneline SUITE < FILE: "deb [options] URI SUITE COMPONENTS…".
apt_mirror_oneline() {
	awk -v suite="$1" '
		{ sub(/#.*/, "") }
		$1 != "deb" { next }
		{
			i = 2
			if ($i ~ /^\[/) { # options, possibly spread over several fields
				while (i <= NF && $i !~ /\]$/) i++
				i++
			}
			if ($(i + 1) == suite && $i ~ /^(https?|ftp|file):/) { print $i; exit }
		}'
}

# apt_mirror_deb822 SUITE < FILE: stanzas of "Field: value" lines separated
# by blank lines, a value continued on lines that start with white space
# (sources.list(5), DEB822-STYLE FORMAT).
apt_mirror_deb822() {
	awk -v suite="$1" '
		function flush(   n, j, us) {
			gsub(/[ \t]+/, " ", suites); gsub(/[ \t]+/, " ", types)
			n = split(uris, us, /[ \t]+/)
			for (j = 1; j <= n; j++) if (us[j] ~ /^(https?|ftp|file):/) break
			if (types ~ /(^| )deb( |$)/ && enabled != "no" && (" " suites " ") ~ (" " suite " ") && j <= n) {
				print us[j]
				found = 1
				exit
			}
			types = ""; suites = ""; uris = ""; enabled = ""; field = ""
		}
		/^#/ { next }
		/^[ \t]*$/ { flush(); next }
		/^[ \t]/ { # a continuation line
			value = $0; gsub(/^[ \t]+|[ \t]+$/, "", value)
			if (field == "types") types = types " " value
			else if (field == "suites") suites = suites " " value
			else if (field == "uris") uris = uris " " value
			next
		}
		/^[A-Za-z0-9-]+:/ {
			field = tolower($0); sub(/:.*/, "", field)
			value = $0; sub(/^[^:]*:[ \t]*/, "", value); sub(/[ \t]+$/, "", value)
			if (field == "types") types = value
			else if (field == "suites") suites = value
			else if (field == "uris") uris = value
			else if (field == "enabled") enabled = tolower(value)
		}
		END { if (!found) flush() }'
}
