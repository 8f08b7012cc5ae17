# shellcheck shell=bash
# Shell functions for .ci/setup-check.sh and .ci/deb-check.sh (source this file).
#
# reroot: rewrites the absolute paths of an installation (/usr/local/bin, /var/lib/notifyctl,
# /etc/notifyctl, ...) under $SYSROOT, so the README's steps run as written into a temp
# directory. With SYSROOT empty it changes nothing (the Debian check installs for real).
#
# simulate_unit UNIT: what systemd does to start a oneshot service, for the keys our unit
# uses (there is no systemd PID 1 on the CI machine): the StateDirectory owned by
# User:Group with StateDirectoryMode, Environment= (%S is /var/lib), EnvironmentFile=
# (optional with "-"), UMask=, StandardOutput=null, then each ExecStartPre= and ExecStart=
# as User= with only that environment. Fails on the first command that fails.

SYSROOT=${SYSROOT:-}

reroot() {
    if [ -z "$SYSROOT" ]; then
        cat
    else
        sed -E "s#(^|[^A-Za-z0-9_./-])/(usr/local/bin|usr/local/share|var/lib/notifyctl|etc/notifyctl|etc/cron\.d|etc/systemd/system|etc/bash_completion\.d)#\1$SYSROOT/\2#g"
    fi
}

unit_key() {  # unit_key UNIT KEY: every value of KEY=, one per line
    sed -n "s/^$2=//p" "$1"
}

simulate_unit() {
    local unit=$1 user group umask sdir smode state out=/dev/stdout
    user=$(unit_key "$unit" User)
    group=$(unit_key "$unit" Group)
    umask=$(unit_key "$unit" UMask)
    sdir=$(unit_key "$unit" StateDirectory)
    smode=$(unit_key "$unit" StateDirectoryMode)
    [ "$(unit_key "$unit" StandardOutput)" = null ] && out=/dev/null
    state=$SYSROOT/var/lib/$sdir
    if [ -d "$state" ]; then
        chown "$user:$group" "$state" && chmod "$smode" "$state"
    else
        install -d -m "$smode" -o "$user" -g "$group" "$state"
    fi
    local env=() kv f optional line
    while IFS= read -r kv; do
        env+=("$(reroot <<<"${kv//%S//var/lib}")")
    done < <(unit_key "$unit" Environment)
    while IFS= read -r f; do
        optional=no
        if [[ $f == -* ]]; then optional=yes; f=${f#-}; fi
        f=$(reroot <<<"$f")
        if [ -f "$f" ]; then
            while IFS= read -r kv; do
                if [[ $kv =~ ^[A-Za-z_][A-Za-z0-9_]*= ]]; then env+=("$(reroot <<<"$kv")"); fi
            done <"$f"
        elif [ "$optional" = no ]; then
            echo "unit: EnvironmentFile $f is missing" >&2
            return 1
        fi
    done < <(unit_key "$unit" EnvironmentFile)
    for key in ExecStartPre ExecStart; do
        while IFS= read -r line; do
            local argv
            read -r -a argv <<<"$(reroot <<<"$line")"
            echo "unit: $key as $user: ${argv[*]}"
            (umask "$umask" && runuser -u "$user" -- env -i "${env[@]}" "${argv[@]}" </dev/null >"$out") || {
                echo "unit: $key failed: ${argv[*]}" >&2
                return 1
            }
        done < <(unit_key "$unit" "$key")
    done
}
