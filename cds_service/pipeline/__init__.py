"""The hook call's pipeline: validate, complete the prefetch, read the facts, run the rules, render the cards."""
