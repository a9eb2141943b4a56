package cache

import "github.com/pctoken/pctoken-helper/internal/safefs"

// noFollow keeps opens from following a symbolic link planted in place of a file.
const noFollow = safefs.NoFollow

// openReadFlags: no symbolic links, and no hanging on a FIFO put where a file should be.
const openReadFlags = safefs.ReadFlags
