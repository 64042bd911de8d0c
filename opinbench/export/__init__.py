"""Runs written in other projects' formats (lm-eval's own files stay the primary one):
`eee` writes the Every Eval Ever schema."""
