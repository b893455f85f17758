"""`python -m dialer_cli`: the `dialer` command."""

from dialer_cli.main import main

main()
