from budget_tracker.cli import main

main(prog_name="budget")
