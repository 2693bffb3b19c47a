"""The local development stack behind the README's run command (processes only; nothing is imported)."""
