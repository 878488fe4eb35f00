package atomicfile

import "errors"

// ErrNoTemp reports that Write could not create its temporary file in the
// directory of the file to replace.
var ErrNoTemp = errors.New("atomicfile: cannot create a temporary file")
