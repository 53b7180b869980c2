"""`python -m merlin_doctor` is the same as the `merlin-doctor` command."""

from merlin_doctor.cli import main

if __name__ == "__main__":
    main()
