//! Generic multi-step form flows (Home Assistant's data_entry_flow).
