"""Who may call the VOS3000-compatible API by address alone, as VOS's own Web access control has it."""
