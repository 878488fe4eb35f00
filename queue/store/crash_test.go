package store

const crashHelperEnv = "CORVID_QSTORE_CRASH_HELPER"

func crashHelper() {}
