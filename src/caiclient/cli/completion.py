"""``cai completion SHELL``: print the shell completion script (click's, for bash/zsh/fish)."""

from __future__ import annotations

import click

from ._app import EXIT_OK

__all__ = ["completion"]


@click.command("completion")
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> int:
    """Print the completion script for SHELL.

    Load it with, for bash: eval "$(cai completion bash)"; zsh: the same in ~/.zshrc;
    fish: cai completion fish > ~/.config/fish/completions/cai.fish
    """
    from click.shell_completion import get_completion_class

    from ._app import root

    cls = get_completion_class(shell)
    if cls is None:  # pragma: no cover - click.Choice allows only the shells click knows
        raise click.UsageError(f"no completion for {shell}")
    click.echo(cls(root, {}, "cai", "_CAI_COMPLETE").source())
    return EXIT_OK
