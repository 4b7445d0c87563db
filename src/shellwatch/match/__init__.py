"""EQL comparison primitives and the shell command lexer."""
