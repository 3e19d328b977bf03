"""``python -m spikeport.cli``: the command line; ``--reference`` prints docs/cli.md."""
import sys

from . import main, reference_markdown

if sys.argv[1:] == ["--reference"]:
    print(reference_markdown(), end="")
    sys.exit(0)
sys.exit(main())
