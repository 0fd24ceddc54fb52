//! Integration tests live in this folder.
