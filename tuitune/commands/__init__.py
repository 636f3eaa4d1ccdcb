"""One module per CLI subcommand: HELP, register(parser), run(args) -> exit code.

Modules import only the standard library at module level; the work happens inside run().
"""
