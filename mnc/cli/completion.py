"""``mnc completion bash|zsh|fish``: a shell completion script generated from the parser.

The script is built from every command's argparse parser, so it always lists the commands and
flags this version has: flag values with choices complete to those choices, spec arguments to
the shipped spec names (and files), other values to files.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass, field

NAME = "completion"
HELP = "print a shell completion script for bash, zsh or fish"
SHELLS = ("bash", "zsh", "fish")

# Arguments that name a spec: shipped names complete besides files.
_SPEC_DESTS = frozenset({"spec", "left", "right"})


@dataclass
class Command:
    """What completes after ``mnc NAME``: its flags, their values, its positional specs."""

    name: str
    help: str
    flags: dict[str, str] = field(default_factory=dict)
    """Every option string with its help (first line)."""
    values: dict[str, list[str]] = field(default_factory=dict)
    """Options that take a value: their choices ([] for any value)."""
    spec_flags: set[str] = field(default_factory=set)
    takes_spec: bool = False
    subcommands: dict[str, Command] = field(default_factory=dict)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("shell", choices=SHELLS, help="the shell to complete in")
    parser.epilog = (
        'bash: eval "$(mnc completion bash)" (or save it in '
        '~/.local/share/bash-completion/completions/mnc); zsh: eval "$(mnc completion zsh)" '
        "in ~/.zshrc; fish: mnc completion fish > ~/.config/fish/completions/mnc.fish"
    )


def run(args: argparse.Namespace) -> int:
    print(script(args.shell), end="")
    return 0


def script(shell: str) -> str:
    from mnc.spec.shipped import shipped_specs

    commands = list_commands()
    specs = list(shipped_specs())
    if shell == "fish":
        return _fish(commands, specs)
    text = _bash(commands, specs)
    if shell == "zsh":  # zsh runs bash completion functions through bashcompinit
        return (
            "autoload -U +X compinit && compinit\nautoload -U +X bashcompinit && bashcompinit\n"
            + text
        )
    return text


def list_commands() -> list[Command]:
    """Every command of ``mnc`` with its arguments, in the order ``mnc --help`` lists them."""
    from mnc.cli import main

    found = []
    for name, (_, help_text) in main.COMMANDS.items():
        main.build_parser(name)  # imports the command's module and adds its arguments
        found.append(_describe(name, help_text, main.COMMAND_PARSERS[name]))
    return found


def _first_line(text: str | None) -> str:
    line = (text or "").split(";")[0].split(". ")[0].replace("%%", "%").strip()
    return line if len(line) <= 70 else line[:67] + "..."


def _describe(name: str, help_text: str, parser: argparse.ArgumentParser) -> Command:
    command = Command(name, help_text)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for sub_name, sub in action.choices.items():
                command.subcommands[sub_name] = _describe(sub_name, helps.get(sub_name) or "",
                                                          sub)
            continue
        if action.help == argparse.SUPPRESS:
            continue
        if not action.option_strings:
            command.takes_spec = command.takes_spec or action.dest in _SPEC_DESTS
            continue
        for option in action.option_strings:
            command.flags[option] = _first_line(action.help)
            if action.nargs != 0:
                command.values[option] = [str(choice) for choice in action.choices or ()]
                if action.metavar == "SPEC" or action.dest in _SPEC_DESTS:
                    command.spec_flags.add(option)
    return command


def _words(items: list[str] | set[str] | Mapping[str, object]) -> str:
    return " ".join(sorted(items)) if not isinstance(items, list) else " ".join(items)


def _bash_case(key: str, command: Command) -> list[str]:
    lines = [
        f'        "{key}")',
        f'            flags="{_words(command.flags)}"',
        f'            valued=" {_words(command.values)} "',
        f'            specflags=" {_words(command.spec_flags)} "',
        f'            subs="{_words(list(command.subcommands))}"',
        f"            takes_spec={int(command.takes_spec)}",
    ]
    choices = [(option, values) for option, values in command.values.items() if values]
    if choices:
        lines.append('            case "$prev" in')
        for option, values in choices:
            lines.append(f'                {option}) choices="{" ".join(values)}" ;;')
        lines.append("            esac")
    lines.append("            ;;")
    for sub in command.subcommands.values():
        lines += _bash_case(f"{key} {sub.name}", sub)
    return lines


def _bash(commands: list[Command], specs: list[str]) -> str:
    cases = [line for command in commands for line in _bash_case(command.name, command)]
    names = " ".join(command.name for command in commands)
    nested = [
        f'        [[ $key == "{command.name}" ]] && subs="{_words(list(command.subcommands))}"'
        for command in commands
        if command.subcommands
    ]
    return "\n".join(
        [
            "# bash completion for mnc, generated by `mnc completion bash`",
            "_mnc() {",
            '    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}"',
            f'    local commands="{names}" specs="{" ".join(specs)}"',
            '    local key="" flags="--help --verbose --version" valued=" " specflags=" " subs=""',
            '    local takes_spec=0 choices="" word i',
            "    for ((i = 1; i < COMP_CWORD; i++)); do",
            '        word="${COMP_WORDS[i]}"',
            "        [[ $word == -* ]] && continue",
            '        if [[ -z $key && " $commands " == *" $word "* ]]; then key="$word"',
            '        elif [[ -n $key && " $subs " == *" $word "* && $key != *" "* ]]; then',
            '            key="$key $word"',
            "        fi",
            *nested,
            "    done",
            '    case "$key" in',
            *cases,
            "    esac",
            "    if [[ -n $choices ]]; then",
            '        COMPREPLY=($(compgen -W "$choices" -- "$cur")); return',
            "    fi",
            '    if [[ $prev == -* && " $valued " == *" $prev "* ]]; then',
            '        if [[ " $specflags " == *" $prev "* ]]; then',
            '            COMPREPLY=($(compgen -W "$specs" -- "$cur") $(compgen -f -- "$cur"))',
            "        else",
            '            COMPREPLY=($(compgen -f -- "$cur"))',
            "        fi",
            "        return",
            "    fi",
            "    if [[ $cur == -* ]]; then",
            '        COMPREPLY=($(compgen -W "$flags" -- "$cur"))',
            "    elif [[ -z $key ]]; then",
            '        COMPREPLY=($(compgen -W "$commands" -- "$cur"))',
            '    elif [[ -n $subs && $key != *" "* ]]; then',
            '        COMPREPLY=($(compgen -W "$subs" -- "$cur"))',
            "    elif ((takes_spec)); then",
            '        COMPREPLY=($(compgen -W "$specs" -- "$cur") $(compgen -f -- "$cur"))',
            "    else",
            '        COMPREPLY=($(compgen -f -- "$cur"))',
            "    fi",
            "}",
            "complete -o filenames -F _mnc mnc",
            "",
        ]
    )


def _fish_quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _fish_flags(condition: str, command: Command, specs: list[str]) -> list[str]:
    lines = []
    for option, description in command.flags.items():
        name = f"-l {option[2:]}" if option.startswith("--") else f"-s {option[1:]}"
        values = command.values.get(option)
        if values:
            taking = f" -x -a {_fish_quote(' '.join(values))}"
        elif option in command.spec_flags:
            taking = f" -rF -a {_fish_quote(' '.join(specs))}"
        else:
            taking = " -rF" if values is not None else ""
        lines.append(
            f"complete -c mnc -n {_fish_quote(condition)} {name}{taking} "
            f"-d {_fish_quote(description)}"
        )
    return lines


def _fish(commands: list[Command], specs: list[str]) -> str:
    lines = [
        "# fish completion for mnc, generated by `mnc completion fish`",
        "complete -c mnc -f",
        "complete -c mnc -n '__fish_use_subcommand' -l verbose -d 'show the full traceback'",
        "complete -c mnc -n '__fish_use_subcommand' -l version -d 'show the version'",
    ]
    for command in commands:
        lines.append(
            f"complete -c mnc -n '__fish_use_subcommand' -a {command.name} "
            f"-d {_fish_quote(command.help)}"
        )
        inside = f"__fish_seen_subcommand_from {command.name}"
        lines += _fish_flags(inside, command, specs)
        if command.takes_spec:
            lines.append(
                f"complete -c mnc -n {_fish_quote(inside)} -F -a {_fish_quote(' '.join(specs))}"
            )
        subs = " ".join(command.subcommands)
        for sub in command.subcommands.values():
            before_sub = f"{inside}; and not __fish_seen_subcommand_from {subs}"
            lines.append(
                f"complete -c mnc -n {_fish_quote(before_sub)} "
                f"-a {sub.name} -d {_fish_quote(sub.help or '')}"
            )
            lines += _fish_flags(
                f"{inside}; and __fish_seen_subcommand_from {sub.name}", sub, specs
            )
    return "\n".join(lines) + "\n"
