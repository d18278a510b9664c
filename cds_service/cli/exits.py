"""The exit codes of ``cds-service``, apart so that the commands and ``main`` say the same ones
(a supervisor or a script acts on them) without the commands importing the module that imports them."""

EXIT_INVALID = 2
# A start that failed for now (the database out of reach): a worker's STARTUP_FAILURE, a supervisor retries.
EXIT_START_FAILED = 3
# The reader of our output went away (`cds-service report | head`): a shell's 128 + SIGPIPE.
EXIT_BROKEN_PIPE = 141
