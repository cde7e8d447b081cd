//! media (work in progress).
