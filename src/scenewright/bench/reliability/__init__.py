"""The reliability table (issue 17): hostile cases on every face, each in its own process."""
