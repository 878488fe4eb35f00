package protocol

// BinaryRequestMagic is the first byte of every binary-protocol request.
const BinaryRequestMagic = 0x80
