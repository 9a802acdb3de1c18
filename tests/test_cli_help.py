"""Every command's --help: one or two real examples (each naming a real command and only
options it has), every option described, repeatable options said to be, and no option
offered where it means nothing."""

from __future__ import annotations

import shlex

import click
import pytest
from conftest import cli

from abcitrain.cli.app import cli as group
from abcitrain.cli.examples import EXAMPLES


def _commands() -> dict[str, click.Command]:
    found: dict[str, click.Command] = {}

    def walk(command: click.Command, path: str) -> None:
        if path:
            found[path] = command
        if isinstance(command, click.Group):
            for name in command.list_commands(click.Context(command)):
                sub = command.get_command(click.Context(command), name)
                assert sub is not None
                walk(sub, f"{path} {name}".strip())

    walk(group, "")
    return found


COMMANDS = _commands()


@pytest.mark.parametrize("path", sorted(COMMANDS))
def test_help_has_examples_and_describes_every_option(path: str) -> None:
    text = cli(*path.split(), "--help").output
    examples = text.split("Examples:\n", 1)[-1]
    assert "Examples:\n    " in text and "\n    abcitrain " in "\n" + examples, text
    command = COMMANDS[path]
    for param in command.params:
        if isinstance(param, click.Option) and not param.hidden:
            assert param.help, f"{path} {param.opts[0]} has no help"
            if param.multiple:
                assert "repeat" in param.help, f"{path} {param.opts[0]} is repeatable"


@pytest.mark.parametrize("path", sorted(EXAMPLES))
def test_each_example_is_a_real_command_with_real_options(path: str) -> None:
    assert path in COMMANDS, path
    for example in EXAMPLES[path]:
        if not example.startswith("abcitrain "):
            continue                    # what makes the command's input (sacct ...)
        words = shlex.split(example)[1:]
        # the longest command path the example starts with
        name = max((p for p in COMMANDS if words[:len(p.split())] == p.split()), key=len)
        opts = {o for p in COMMANDS[name].params for o in getattr(p, "opts", ())}
        for word in words[len(name.split()):]:
            if word == "--":
                break
            if word.startswith("-"):
                assert word.split("=")[0] in opts | {"--help"}, (example, word)


def test_hold_is_not_offered_where_it_changes_nothing() -> None:
    assert "--hold" not in cli("check", "--help").output
    assert "--hold" in cli("submit", "--help").output
    assert "--hold" in cli("render", "--help").output      # the script's hold directive
