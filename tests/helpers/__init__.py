"""Code shared by test files (fixture data and loaders); no tests here."""
