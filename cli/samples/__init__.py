"""Real-shaped failure payloads that ``remediator send-test`` posts (package data: they ship in
the wheel). Copies of tests/testdata/samples; a test keeps them equal to their originals."""
