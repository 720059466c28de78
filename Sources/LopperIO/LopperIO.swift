import LopperCore
