print("lopper")
