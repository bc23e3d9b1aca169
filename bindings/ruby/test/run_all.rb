# frozen_string_literal: true

# Runs every test_*.rb of this directory (meson test runs this file).
Dir[File.join(__dir__, "test_*.rb")].sort.each { |f| require f }
