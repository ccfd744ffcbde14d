# bash completion for amp-cli                                 -*- shell-script -*-
#
# Nothing here lists amp-cli's verbs or options: they are read, at the moment
# of completing, from the amp-cli being completed ('amp-cli --help' for the
# verbs, 'amp-cli VERB --help' for a verb's options), so the completion
# follows the binary it completes and cannot go stale. (Only which of the
# shared connection settings take a value, or a file, is written below: their
# help names --ca, --hostname, --cert and --key without a value.) Command names (for
# 'call', 'serve' and 'commands') and the argument names of call's COMMAND
# (from its signature) come from the broker itself ('amp-cli commands
# --json'), asked only when an endpoint is known (--server, call's
# positional ENDPOINT, or AMP_URL) and with the connection settings of the
# line, with a short timeout; any failure completes nothing.
#
# Installed as share/bash-completion/completions/amp-cli (bash-completion
# loads it on first use); from a build tree: source tools/amp-cli/amp-cli.bash
# Needs bash alone; bash-completion's _filedir is used when it is loaded.

# The options of the shared connection settings that take a value, and those
# of any verb whose value is a file; options shown as '--NAME FILE' or
# '--NAME PATH' in a verb's --help are files too.
_amp_cli_value_opts=" --server --ca --hostname --cert --key --user --password-file --token-file "
_amp_cli_file_opts=" --ca --cert --key --password-file --token-file --starttls-cert --starttls-key "

# _amp_cli_run CLI ARG...: run amp-cli quietly, killed after 3 seconds.
_amp_cli_run()
{
    if type -P timeout >/dev/null; then
        timeout 3 "$@" 2>/dev/null </dev/null
    else
        "$@" 2>/dev/null </dev/null
    fi
}

# _amp_cli_verbs CLI: the verbs listed under "verbs:" in 'amp-cli --help'.
_amp_cli_verbs()
{
    local line in=
    while IFS= read -r line; do
        if [[ $line == verbs: ]]; then
            in=1
        elif [[ $in && $line =~ ^\ +([a-z][a-z0-9-]*)\  ]]; then
            printf '%s\n' "${BASH_REMATCH[1]}"
        elif [[ $in && -z $line ]]; then
            break
        fi
    done < <(_amp_cli_run "$1" --help)
}

# _amp_cli_options CLI VERB: sets _amp_cli_opts to every long option that
# 'amp-cli VERB --help' mentions, each followed by a space. An option that
# starts a line of the help's option list with a value after it
# ('  --count N   ...', '  --a FILE, --b FILE') is added to
# _amp_cli_takes_value, and to _amp_cli_takes_file if that value is FILE or
# PATH. (test_cli_docs checks this against amp-cli's own parser.)
_amp_cli_options()
{
    local line word head item
    _amp_cli_opts=" --help "
    _amp_cli_takes_value=$_amp_cli_value_opts
    _amp_cli_takes_file=$_amp_cli_file_opts
    while IFS= read -r line; do
        for word in ${line//[^a-z0-9-]/ }; do
            [[ $word =~ ^--[a-z][a-z0-9-]*$ && $_amp_cli_opts != *" $word "* ]] &&
                _amp_cli_opts+="$word "
        done
        [[ $line =~ ^\ +(--[a-z].*) ]] || continue
        head=${BASH_REMATCH[1]%%  *}
        # the value: a placeholder without lower-case letters (N, FILE,
        # 'CMD', NAME[:TYPE]=VALUE), even when one space only separates the
        # description that follows
        while [[ $head =~ ^(--[a-z][a-z0-9-]*)\ ([A-Z\'][^\ ,a-z]*)(,\ *(--.*))?([ ,].*)?$ ]]; do
            item=${BASH_REMATCH[1]}
            _amp_cli_takes_value+="$item "
            [[ ${BASH_REMATCH[2]} == FILE || ${BASH_REMATCH[2]} == PATH ]] &&
                _amp_cli_takes_file+="$item "
            head=${BASH_REMATCH[4]}
        done
    done < <(_amp_cli_run "$1" "$2" --help)
}

# _amp_cli_files CUR: complete file names.
_amp_cli_files()
{
    if declare -F _filedir >/dev/null; then
        cur=$1 _filedir
    else
        compopt -o filenames 2>/dev/null
        mapfile -t COMPREPLY < <(compgen -f -- "$1")
    fi
}

# _amp_cli_offer CUR: COMPREPLY = the lines of stdin that start with CUR and
# are plain words. Names come from the broker, that is from any peer that may
# register one: they never reach compgen -W (which would expand $(...) in
# them) and a name with a character the shell would read (space, quote, $,
# ;, ...) or a control byte is not offered at all.
_amp_cli_offer()
{
    local name
    COMPREPLY=()
    while IFS= read -r name; do
        [[ $name =~ ^[A-Za-z0-9_.:@/+-]+=?$ && $name == "$1"* ]] && COMPREPLY+=("$name")
    done
}

# _amp_cli_commands CLI ARGS...: the command names in what
# 'amp-cli commands --json' prints (one JSON object per command).
_amp_cli_commands()
{
    local line
    _amp_cli_run "$@" | while IFS= read -r line; do
        [[ $line =~ ^\{\"command\":\ ?\"([^\"\\]+)\" ]] && printf '%s\n' "${BASH_REMATCH[1]}"
    done
}

# _amp_cli_arguments CLI ARGS...: 'NAME=' for each argument of the
# signature that 'amp-cli commands --json COMMAND' prints ("arguments":
# [{"name": ..., "type": ..., "optional": ...}, ...]; names and type strings
# hold no '"', '[' or ']').
_amp_cli_arguments()
{
    local line list
    _amp_cli_run "$@" | while IFS= read -r line; do
        [[ $line =~ \"arguments\":\ ?\[([^]]*)\] ]] || continue
        list=${BASH_REMATCH[1]}
        while [[ $list =~ \"name\":\ ?\"([^\"]+)\"(.*) ]]; do
            printf '%s=\n' "${BASH_REMATCH[1]}"
            list=${BASH_REMATCH[2]}
        done
    done
}

# _amp_cli_words: bash splits the line at ':' and '=' too (COMP_WORDBREAKS),
# so 'tcp:127.0.0.1:7760' is five words: sets words/cword with them joined.
_amp_cli_words()
{
    local i w
    words=() cword=0
    for ((i = 0; i < ${#COMP_WORDS[@]}; i++)); do
        w=${COMP_WORDS[i]}
        if ((i > 0)) && [[ $w =~ ^[:=]+$ ]]; then
            words[${#words[@]} - 1]+=$w
            if ((i < COMP_CWORD)); then
                ((i++))
                words[${#words[@]} - 1]+=${COMP_WORDS[i]}
            fi
        else
            words+=("$w")
        fi
        ((i <= COMP_CWORD)) && cword=$((${#words[@]} - 1))
    done
}

# _amp_cli_scan: from the words between the verb and the one completed, sets
# pos (the operands), conn (the connection settings given, to ask the broker
# with the same ones) and ended (a '--' was given: no option after it).
# Options may come before or after the operands.
_amp_cli_scan()
{
    local i w
    pos=() conn=() ended=''
    for ((i = verb_at + 1; i < cword; i++)); do
        w=${words[i]}
        if [[ -n $ended ]]; then
            pos+=("$w")
        elif [[ $w == -- ]]; then
            ended=1
        elif [[ $w == --*=* ]]; then
            [[ $_amp_cli_value_opts == *" ${w%%=*} "* ]] && conn+=("$w")
        elif [[ $w == -* ]]; then
            if [[ $_amp_cli_takes_value == *" $w "* ]]; then
                [[ $_amp_cli_value_opts == *" $w "* ]] && conn+=("$w" "${words[i + 1]-}")
                ((i++))
            elif [[ $w == --starttls || $w == --insecure ]]; then
                conn+=("$w")
            fi
        else
            pos+=("$w")
        fi
    done
}

# _amp_cli_remote: the operands of call ([ENDPOINT] COMMAND [ARG]...; an
# ENDPOINT, without --server, is a first operand with a ':' before any '='),
# serve (COMMAND...) and commands ([PATTERN]): command names, then call's
# argument names, from the broker when one is named.
_amp_cli_remote()
{
    local c given='' cmd_at=0 w0=${pos[0]-}
    for c in "${conn[@]}"; do
        [[ $c == --server || $c == --server=* ]] && given=1
    done
    if [[ $verb == call && -z $given && ${w0%%=*} == *:* ]]; then
        conn+=(--server "$w0")
        given=1 cmd_at=1
    fi
    [[ -n $given || -n ${AMP_URL-} ]] || return 0
    [[ $verb == commands && ${#pos[@]} -gt 0 ]] && return 0
    if [[ $verb != call || ${#pos[@]} -eq $cmd_at ]]; then
        _amp_cli_offer "$cur" < <(_amp_cli_commands "$cli" commands --json --timeout 1 \
            "${conn[@]}")
        return 0
    fi
    # call's arguments: the names its signature declares, those not given yet
    local cmd=${pos[cmd_at]} name
    [[ $word == *[=:]* || $cmd == *[*?[]* ]] && return 0
    _amp_cli_offer "$cur" < <(
        _amp_cli_arguments "$cli" commands --json --timeout 1 "${conn[@]}" "$cmd" |
            while IFS= read -r name; do
                for c in "${pos[@]:cmd_at+1}"; do
                    [[ ${c%%[:=]*}= == "$name" ]] && continue 2
                done
                printf '%s\n' "$name"
            done
    )
    ((${#COMPREPLY[@]})) && compopt -o nospace 2>/dev/null
    return 0
}

_amp_cli()
{
    local -a words pos conn
    local cword ended
    _amp_cli_words
    # cur is the word as bash splits it (what COMPREPLY replaces); the
    # joined words decide what to complete
    local cur=${COMP_WORDS[COMP_CWORD]} word=${words[cword]} prev='' cli=${words[0]}
    ((cword > 0)) && prev=${words[cword - 1]}
    COMPREPLY=()
    cli=${cli/#\~/$HOME}
    type -P "$cli" >/dev/null || return 0

    # the verb: the first word after amp-cli (no top-level option takes a value)
    local i verb='' verb_at=0
    for ((i = 1; i < cword; i++)); do
        if [[ ${words[i]} != -* ]]; then
            verb=${words[i]} verb_at=$i
            break
        fi
    done
    if [[ -z $verb ]]; then
        if [[ $cur == -* ]]; then
            mapfile -t COMPREPLY < <(compgen -W '--help --version' -- "$cur")
        else
            mapfile -t COMPREPLY < <(compgen -W "$(_amp_cli_verbs "$cli")" -- "$cur")
        fi
        return 0
    fi

    _amp_cli_options "$cli" "$verb"
    _amp_cli_scan

    # the value of an option: after it, or after '--option='
    local opt=''
    if [[ -n $ended ]]; then
        :
    elif [[ $word == --*=* ]]; then
        opt=${word%%=*}
    elif [[ $_amp_cli_takes_value == *" $prev "* ]]; then
        opt=$prev
    fi
    if [[ -n $opt ]]; then
        [[ $_amp_cli_takes_file == *" $opt "* ]] && _amp_cli_files "${word#"$opt"=}"
        return 0
    fi

    if [[ $cur == -* && -z $ended ]]; then
        mapfile -t COMPREPLY < <(compgen -W "$_amp_cli_opts" -- "$cur")
        return 0
    fi

    case $verb in
    decode | encode)
        ((${#pos[@]} == 0)) && _amp_cli_files "$cur"
        ;;
    call | serve | commands)
        _amp_cli_remote
        ;;
    esac
    return 0
}

complete -F _amp_cli amp-cli
