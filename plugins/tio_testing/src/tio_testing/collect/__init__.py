"""The test module ``pytest --tio-contract`` collects; kept alone in this folder so it is all that gets collected."""
