//! Define and executor catalogs (placeholder; being written).
