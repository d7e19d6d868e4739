"""One module per ``bioscale`` sub-command."""
