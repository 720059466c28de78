import LopperIO
